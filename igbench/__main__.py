import sys

from igbench.cli.main import main

sys.exit(main())
