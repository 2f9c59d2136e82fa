from lanemodel.cli import main

raise SystemExit(main())
