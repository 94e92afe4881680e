"""Collection: the doctest run (`--doctest-modules`) imports every module of the
package, but `jaxdecay.keras` registers its classes with Keras on import, which
needs Keras on its JAX backend. It has no doctest; the tests import it."""

collect_ignore = ["jaxdecay/keras.py"]
