"""What the hardware is: parameter pytrees and the loaders that fill them.

Nothing here knows about models. Timing fields keep their JEDEC names and are counted in
clock cycles of ``tCK_ns``.
"""

from dse.hw.host import Host, Links, PimEnergy
from dse.hw.pim import Hardware, Module, PimChannel

__all__ = ["Hardware", "Host", "Links", "Module", "PimChannel", "PimEnergy"]
