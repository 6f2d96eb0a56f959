import sys

from musegen.cli.main import main

sys.exit(main())
