"""Route handlers per profile; each module maps operation ids from the table to handlers."""
