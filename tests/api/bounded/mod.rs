//! Bounded under load: memory that stays flat with nothing scraping `/metrics`, release
//! versions that never collide, rate limits per token, and refusals that agree across the
//! two transports.

mod memory;
mod rate_limits;
mod refusals;
mod versions;
