from __future__ import annotations

import sys

from fleetota_core.cli import main

sys.exit(main())
