"""usersync: keep a User 360 profile store in sync with userdata_*.csv files on remote stores."""

__version__ = "0.1.0"
