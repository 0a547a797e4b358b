"""PyTorch's size and dims arguments: positional ints, one sequence, or one keyword.

``x.reshape(2, 3)``, ``x.reshape((2, 3))`` and ``x.reshape(shape=(2, 3))`` mean the same;
PyTorch takes one form per call. Every method and function that has such an argument
reads it through :func:`one_form`."""


def one_form(name: str, positional: tuple, **keywords) -> tuple:
    """The arguments as their positional form: ``positional`` unchanged when no keyword
    was given, else ``(value,)`` of the one keyword given (None means not given).

    ``name`` is the call's name for the error; ``keywords`` are its keyword forms in
    PyTorch's order (``size=``, ``dtype=`` for ``view``)."""
    given = [(k, v) for k, v in keywords.items() if v is not None]
    if not given:
        return positional
    if positional:
        raise TypeError(
            f"{name}(): got the {given[0][0]} both positionally and as {given[0][0]}=; "
            f"pass it one way (it takes the sizes positionally or one of "
            f"{', '.join(keywords)} by keyword)"
        )
    if len(given) > 1:
        raise TypeError(
            f"{name}() takes one of {', '.join(keywords)} by keyword, got "
            f"{', '.join(k for k, _ in given)}"
        )
    return (given[0][1],)
