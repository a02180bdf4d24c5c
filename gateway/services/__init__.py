"""The domain layer: plain values in, Peewee rows out, face-neutral errors raised."""
