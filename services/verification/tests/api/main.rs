//! verification against the real broker and database: one test binary, one private environment
//! per test.

mod backorders;
mod concurrency;
mod documenting;
mod goods;
mod helpers;
mod orders;
mod reasons;
mod records;
