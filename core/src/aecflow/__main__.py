from aecflow.cli import main

main()
