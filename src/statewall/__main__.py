"""`python -m statewall`: the `statewall` command."""

from statewall.cli import main

raise SystemExit(main())
