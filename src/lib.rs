//! libfleets
