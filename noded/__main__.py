import sys

from noded.app import main

sys.exit(main())
