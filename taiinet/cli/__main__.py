import sys

from taiinet.cli import main

sys.exit(main())
