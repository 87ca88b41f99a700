from usersync.cli import run

run()
