//! The revision feed of one scope: where a page ends and which collections it reads (from
//! revisions alone), then those collections' rows up to there.

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::scope::Scope;
use super::{Change, Collection, changes};
use crate::db::DbConn;
use crate::domain::attendance::AttendanceRecords;
use crate::domain::collections::synced_collections;
use crate::domain::enrollments::Enrollments;
use crate::error::Result;
use crate::sync::records::{ROWS_PER_STATEMENT, Writable};

/// Each collection's part of the feed, from the list of synced collections: its rows come from
/// `db::schema`'s table and the scope's method of the same name (`Scope::units`, …).
macro_rules! feed_of_collections {
    ($($variant:ident: $table:ident => $row:path { $($columns:tt)* }),+ $(,)?) => {
        /// The collections the scope reads with a revision in its window, in anyone's scope:
        /// for each, one read of the revision index, by a statement prepared once per
        /// connection. The scoped queries are prepared anew on every page (their list of
        /// courses varies) and some filter through a subquery over enrollments or sessions;
        /// most pages of a feed hold one or two collections, and the others then cost only
        /// this probe.
        fn collections_in_window(conn: &mut DbConn, scope: &Scope) -> Result<Vec<Collection>> {
            let mut present = Vec::new();
            $(
                if scope.$table(scope.upto).is_some()
                    && diesel::select(diesel::dsl::exists(
                        crate::db::schema::$table::table
                            .filter(crate::db::schema::$table::rev.gt(scope.after))
                            .filter(crate::db::schema::$table::rev.le(scope.upto)),
                    ))
                    .get_result::<bool>(conn)?
                {
                    present.push(Collection::$variant);
                }
            )+
            Ok(present)
        }

        /// The first `take` revisions of a collection's feed in scope.
        fn scoped_revisions(
            conn: &mut DbConn,
            scope: &Scope,
            collection: Collection,
            take: i64,
        ) -> Result<Vec<i64>> {
            Ok(match collection {
                $(Collection::$variant => match scope.$table(scope.upto) {
                    Some(query) => query
                        .select(crate::db::schema::$table::rev)
                        .order(crate::db::schema::$table::rev.asc())
                        .limit(take)
                        .load::<i64>(conn)?,
                    None => Vec::new(),
                },)+
            })
        }

        /// The rows a page reads, as changes: of each collection it holds, its rows up to the
        /// revision the page ends at, at most as many as it says when it says; nothing is read
        /// for a collection the page does not hold or the scope does not read.
        fn rows_in_page(conn: &mut DbConn, scope: &Scope, end: &PageEnd) -> Result<Vec<Change>> {
            let mut out = Vec::new();
            $(
                if let (Some((last, take)), Some(query)) =
                    (end.rows_of(Collection::$variant), scope.$table(end.last()))
                {
                    let query = query
                        .filter(crate::db::schema::$table::rev.le(last))
                        .order(crate::db::schema::$table::rev.asc());
                    let query = match take {
                        Some(take) => query.limit(take),
                        None => query,
                    };
                    out.extend(changes(
                        query.select(<$row>::as_select()).load::<$row>(conn)?,
                    ));
                }
            )+
            Ok(out)
        }
    };
}
synced_collections!(feed_of_collections);

/// What a page reads of each collection.
enum PageEnd {
    /// Every collection's rows up to `last`: a whole feed, no page limit.
    Everything { last: i64 },
    /// The collections with changes in the page, their rows up to the page's last revision.
    /// Found from revisions alone (index-only reads), so that only the rows the page sends are
    /// read and serialised.
    Revisions {
        last: i64,
        has_more: bool,
        present: Vec<Collection>,
    },
    /// Only one collection has revisions in the window, so the page is simply its next rows:
    /// read at once, `take` of them, one more than the page so that the last tells whether more
    /// follow (the common page of a catch-up after a training day: attendance alone).
    Alone {
        collection: Collection,
        last: i64,
        take: i64,
    },
}

impl PageEnd {
    /// The highest revision the page may hold.
    fn last(&self) -> i64 {
        match self {
            PageEnd::Everything { last }
            | PageEnd::Revisions { last, .. }
            | PageEnd::Alone { last, .. } => *last,
        }
    }

    /// Where the next page starts when more follow: the page holds every change in scope up to
    /// here. Not always its last change's revision: a person counted in the window may be left
    /// for the page of their enrollment (`Scope::people`).
    fn reached(&self, page: &[Change]) -> i64 {
        match self {
            PageEnd::Everything { last } | PageEnd::Revisions { last, .. } => *last,
            PageEnd::Alone { last, .. } => page.last().map_or(*last, |change| change.rev),
        }
    }

    /// The highest revision and how many rows the page reads of `collection`; None: none.
    fn rows_of(&self, collection: Collection) -> Option<(i64, Option<i64>)> {
        match self {
            PageEnd::Everything { last } => Some((*last, None)),
            PageEnd::Revisions { last, present, .. } => {
                present.contains(&collection).then_some((*last, None))
            }
            PageEnd::Alone {
                collection: alone,
                last,
                take,
            } => (*alone == collection).then_some((*last, Some(*take))),
        }
    }

    /// Cuts the rows read to the page; whether more follow.
    fn cut(&self, rows: &mut Vec<Change>) -> bool {
        match self {
            PageEnd::Everything { .. } => false,
            PageEnd::Revisions { has_more, .. } => *has_more,
            PageEnd::Alone { take, .. } => {
                let page = usize::try_from(take - 1).unwrap_or(usize::MAX);
                let more = rows.len() > page;
                rows.truncate(page);
                more
            }
        }
    }
}

/// Where a page of `limit` changes ends and which collections it reads; None when nothing in
/// the window can be in it.
fn page_end(conn: &mut DbConn, scope: &Scope, limit: i64) -> Result<Option<PageEnd>> {
    let take = limit + 1;
    let in_window = collections_in_window(conn, scope)?;
    if let [collection] = in_window[..] {
        return Ok(Some(PageEnd::Alone {
            collection,
            last: scope.upto,
            take,
        }));
    }
    let mut firsts: Vec<(Collection, Vec<i64>)> = Vec::with_capacity(in_window.len());
    for collection in in_window {
        firsts.push((collection, scoped_revisions(conn, scope, collection, take)?));
    }
    let mut revisions: Vec<i64> = firsts.iter().flat_map(|(_, revs)| revs).copied().collect();
    revisions.sort_unstable();
    let has_more = revisions.len() as i64 > limit;
    let end = revisions
        .len()
        .min(usize::try_from(limit).unwrap_or(usize::MAX));
    let Some(&last) = revisions[..end].last() else {
        return Ok(None);
    };
    let present = firsts
        .into_iter()
        .filter(|(_, revs)| revs.first().is_some_and(|&first| first <= last))
        .map(|(collection, _)| collection)
        .collect();
    Ok(Some(PageEnd::Revisions {
        last,
        has_more,
        present,
    }))
}

/// A page of a scope's feed.
pub(super) struct FeedPage {
    pub(super) changes: Vec<Change>,
    /// The revision the changes follow: the scope's `after`, or further on when the first
    /// stretch of the window held nothing to send (see `feed`).
    pub(super) after: i64,
    /// Where the next page starts when more follow.
    pub(super) more_from: Option<i64>,
}

/// The next `limit` changes in the scope's window, in revision order, and where the next page
/// starts when more follow; everything in the window when `limit` is None. First the revisions
/// alone (index-only reads) find where the page ends and which collections it holds; then only
/// those collections' rows up to there are read and serialised, instead of a page's worth from
/// every collection. When a single collection has revisions in the window, its rows are read
/// at once (see `PageEnd::Alone`). A stretch of revisions that holds nothing to send (people
/// counted in it who come later with their enrollment) is passed over in the same call rather
/// than answered as an empty page: each page is a round trip on a weak link.
pub(super) fn feed(conn: &mut DbConn, scope: &Scope, limit: Option<i64>) -> Result<FeedPage> {
    let mut window = scope.clone();
    loop {
        let end = match limit {
            None => PageEnd::Everything { last: window.upto },
            Some(limit) => match page_end(conn, &window, limit)? {
                Some(end) => end,
                None => {
                    return Ok(FeedPage {
                        changes: Vec::new(),
                        after: window.after,
                        more_from: None,
                    });
                }
            },
        };
        let mut changes = rows_in_page(conn, &window, &end)?;
        changes.sort_by_key(|c| c.rev);
        let has_more = end.cut(&mut changes);
        let more_from = has_more.then(|| end.reached(&changes));
        match more_from {
            Some(next) if changes.is_empty() => window.after = next,
            Some(_) | None => {
                return Ok(FeedPage {
                    changes,
                    after: window.after,
                    more_from,
                });
            }
        }
    }
}

/// The stored device-writable records among `ids` of one collection, as feed changes (none for
/// a collection devices do not write).
pub(crate) fn changes_by_id(
    conn: &mut DbConn,
    collection: Collection,
    ids: &[&str],
) -> Result<BTreeMap<String, Change>> {
    let mut found = BTreeMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let loaded: Vec<Change> = match collection.writable() {
            Some(Writable::Attendance) => changes(AttendanceRecords::by_ids(conn, chunk)?),
            Some(Writable::Enrollments) => changes(Enrollments::by_ids(conn, chunk)?),
            None => Vec::new(),
        };
        found.extend(loaded.into_iter().map(|change| (change.id.clone(), change)));
    }
    Ok(found)
}
