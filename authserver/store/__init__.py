"""The database: the schema (`tables`), engines and connections (`db`, `dialect`), migrations
(`migrate`), and one module of named queries per concern. The only package that writes SQL."""
