from usersync.cli import main

main()
