// placeholder; replaced by pcapng.cc
