from mat_interp_core.cli import main

raise SystemExit(main())
