"""`adapter` as sqlfluff renders the models. The engine is never asked (a relation has no columns yet), and a
macro dispatched from inside another macro renders as a call of the same name with its arguments (the
models' own calls render as their Trino implementations: `../macros/dispatch.sql`)."""


class _Call:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: object) -> str:
        return f"{self.name}({', '.join(str(arg) for arg in args)})"


def dispatch(name: str, macro_namespace: str | None = None) -> _Call:
    return _Call(name)


def get_columns_in_relation(relation: object) -> list:
    return []
