//! What must stay flat as history grows: status contexts counted as they are written, a
//! full reload that never holds up a request, and lists read in a constant number of
//! statements per page.

mod list_pages;
mod reload;
mod status_contexts;
mod whole_lists;
