"""One module per channel, each registering itself with `alerts.channel.channel(NAME)`."""
