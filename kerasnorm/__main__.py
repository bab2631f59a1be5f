"""`python -m kerasnorm`: the demo."""

from kerasnorm.demo import main

raise SystemExit(main())
