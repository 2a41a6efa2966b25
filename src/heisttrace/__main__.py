from heisttrace.cli import main

main()
