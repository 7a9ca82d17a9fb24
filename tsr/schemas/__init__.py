"""Wire models shared by the tsr server and its clients."""
