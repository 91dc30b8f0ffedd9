"""The frontier's live side: what is due, who waits for it, what each outcome records."""
