import sys

from moonwatch.stack.cli import main

sys.exit(main())
