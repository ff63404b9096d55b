import sys

from eqff.cli.main import main

sys.exit(main())
