//! A route's comparison rules: status, body mode, ignored pointers, tolerance, unordered arrays.
