"""OAuth clients: authenticating them (`authentication`) and what each may do (`policy`)."""
