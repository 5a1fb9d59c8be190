from edgelight.cli import main

main()
