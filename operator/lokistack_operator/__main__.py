"""``python -m lokistack_operator``: the same as the ``lokistack-operator`` command."""

import sys

from lokistack_operator import main

sys.exit(main.main())
