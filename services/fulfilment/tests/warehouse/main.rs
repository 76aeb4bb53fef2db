//! The warehouse floor against the real broker and database: the simulated (automatic) warehouse,
//! staff working a manual one, customisation tasks, split shipments, short picks, cancellation.

mod automatic;
mod cancellation;
mod documenting;
mod manual;
mod support;
