//! IP fragment reassembly. (Being written.)
