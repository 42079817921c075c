"""One thin module per DVC stage: read params and paths, call the library, write the outputs."""
