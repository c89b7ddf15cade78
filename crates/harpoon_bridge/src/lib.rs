//! Harpoon bridge: covenants (where a set of repositories is and must get to),
//! harmony review (which repositories take part, and which one leads), strikes
//! (real branches, commits and pull requests in each), and cables (the links
//! between repositories), with their storage. It does not serve HTTP.
//!
//! Nothing is implemented here yet.
