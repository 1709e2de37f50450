import sys

from controlplane.app import main

sys.exit(main())
