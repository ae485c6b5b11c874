"""The toolkit command runs on copies of real-world runtime config files in a temp dir."""

from __future__ import annotations

from helpers.toolkit_fixtures import copy_config as copy_config
from helpers.toolkit_fixtures import toolkit_root as toolkit_root
