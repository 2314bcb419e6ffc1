"""The SQL side of `alerts`: the tables, reading and writing them inside a caller's
transaction, the outbox, and `book_store` (load what a decision needs, save what it decided)."""
