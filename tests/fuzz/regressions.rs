//! Every crash the fuzz harnesses found, as a named test with its minimal input.
