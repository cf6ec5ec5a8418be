"""Motion for game engines and 3D tools, without pixels (`talkface motion`)."""
