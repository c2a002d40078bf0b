//! The admin console's pages and assets, embedded in the binary.
