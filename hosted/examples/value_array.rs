//! Value and Array shared between a parent and forked children.
mod lessons;

fn main() -> lessons::Result {
    lessons::value_and_array()
}
