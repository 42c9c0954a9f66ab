from tracklog.cli import main

main()
