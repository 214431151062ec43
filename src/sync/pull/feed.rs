//! The revision feed of one scope: where a page ends and which collections it reads (from
//! revisions alone), then those collections' rows up to there.

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::scope::Scope;
use super::{Change, Collection, changes};
use crate::db::DbConn;
use crate::db::schema::{
    attendance, course_trainers, courses, enrollments, materials, people, sessions, units,
};
use crate::domain::attendance::Attendance;
use crate::domain::courses::Course;
use crate::domain::enrollments::Enrollment;
use crate::domain::materials::Material;
use crate::domain::people::Person;
use crate::domain::sessions::Session;
use crate::domain::trainers::CourseTrainer;
use crate::domain::units::Unit;
use crate::error::Result;
use crate::sync::records::{ROWS_PER_STATEMENT, Writable};

/// Whether any row of the table, in anyone's scope, has a revision in the scope's window: one
/// read of the revision index, by a statement prepared once per connection. The scoped queries
/// are prepared anew on every page (their list of courses varies) and some filter through a
/// subquery over enrollments or sessions; most pages of a feed hold one or two collections, and
/// the others then cost only this probe.
macro_rules! window_has_rows {
    ($table:ident, $scope:expr, $conn:expr) => {
        diesel::select(diesel::dsl::exists(
            $table::table
                .filter($table::rev.gt($scope.after))
                .filter($table::rev.le($scope.upto)),
        ))
        .get_result::<bool>($conn)?
    };
}

/// The first `take` revisions of one collection's feed.
macro_rules! feed_revisions {
    ($query:expr, $table:ident, $take:expr, $conn:expr) => {
        $query
            .select($table::rev)
            .order($table::rev.asc())
            .limit($take)
            .load::<i64>($conn)?
    };
}

/// One collection's feed as changes: its rows up to revision `last`, at most `take` of them
/// when given; nothing is read for a collection the page does not hold or the scope does not
/// read.
macro_rules! feed_changes {
    ($query:expr, $table:ident, $row:ty, $collection:expr, $scope:expr, $end:expr, $conn:expr) => {
        match $end
            .rows_of($collection)
            .filter(|_| $scope.reads($collection))
        {
            Some((last, take)) => {
                let query = $query.filter($table::rev.le(last)).order($table::rev.asc());
                let query = match take {
                    Some(take) => query.limit(take),
                    None => query,
                };
                changes(
                    $collection,
                    query.select(<$row>::as_select()).load::<$row>($conn)?,
                )
            }
            None => Vec::new(),
        }
    };
}

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

/// The collections the scope reads with a revision in its window, in anyone's scope.
fn collections_in_window(conn: &mut DbConn, scope: &Scope) -> Result<Vec<Collection>> {
    let mut present = Vec::new();
    for collection in Collection::ALL {
        if !scope.reads(collection) {
            continue;
        }
        let in_window = match collection {
            Collection::Units => window_has_rows!(units, scope, conn),
            Collection::People => window_has_rows!(people, scope, conn),
            Collection::Courses => window_has_rows!(courses, scope, conn),
            Collection::CourseTrainers => window_has_rows!(course_trainers, scope, conn),
            Collection::Sessions => window_has_rows!(sessions, scope, conn),
            Collection::Enrollments => window_has_rows!(enrollments, scope, conn),
            Collection::Attendance => window_has_rows!(attendance, scope, conn),
            Collection::Materials => window_has_rows!(materials, scope, conn),
        };
        if in_window {
            present.push(collection);
        }
    }
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
        Collection::Units => feed_revisions!(scope.units(), units, take, conn),
        Collection::People => feed_revisions!(scope.people(scope.upto), people, take, conn),
        Collection::Courses => feed_revisions!(scope.courses_feed(), courses, take, conn),
        Collection::CourseTrainers => match scope.course_trainers() {
            Some(query) => feed_revisions!(query, course_trainers, take, conn),
            None => Vec::new(),
        },
        Collection::Sessions => feed_revisions!(scope.sessions(), sessions, take, conn),
        Collection::Enrollments => feed_revisions!(scope.enrollments(), enrollments, take, conn),
        Collection::Attendance => feed_revisions!(scope.attendance(), attendance, take, conn),
        Collection::Materials => feed_revisions!(scope.materials(), materials, take, conn),
    })
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

/// The next `limit` changes in the scope's window, in revision order, and where the next page
/// starts when more follow; everything in the window when `limit` is None. First the revisions
/// alone (index-only reads) find where the page ends and which collections it holds; then only
/// those collections' rows up to there are read and serialised, instead of a page's worth from
/// every collection. When a single collection has revisions in the window, its rows are read
/// at once (see `PageEnd::Alone`).
pub(super) fn feed(
    conn: &mut DbConn,
    scope: &Scope,
    limit: Option<i64>,
) -> Result<(Vec<Change>, Option<i64>)> {
    let end = match limit {
        None => PageEnd::Everything { last: scope.upto },
        Some(limit) => match page_end(conn, scope, limit)? {
            Some(end) => end,
            None => return Ok((Vec::new(), None)),
        },
    };

    let mut out = Vec::new();
    out.extend(feed_changes!(
        scope.units(),
        units,
        Unit,
        Collection::Units,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.people(end.last()),
        people,
        Person,
        Collection::People,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.courses_feed(),
        courses,
        Course,
        Collection::Courses,
        scope,
        end,
        conn
    ));
    if let Some(query) = scope.course_trainers() {
        out.extend(feed_changes!(
            query,
            course_trainers,
            CourseTrainer,
            Collection::CourseTrainers,
            scope,
            end,
            conn
        ));
    }
    out.extend(feed_changes!(
        scope.sessions(),
        sessions,
        Session,
        Collection::Sessions,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.enrollments(),
        enrollments,
        Enrollment,
        Collection::Enrollments,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.attendance(),
        attendance,
        Attendance,
        Collection::Attendance,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.materials(),
        materials,
        Material,
        Collection::Materials,
        scope,
        end,
        conn
    ));
    out.sort_by_key(|c| c.rev);
    let has_more = end.cut(&mut out);
    let reached = has_more.then(|| end.reached(&out));
    Ok((out, reached))
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
            Some(Writable::Attendance) => changes(
                collection,
                attendance::table
                    .filter(attendance::id.eq_any(chunk))
                    .select(Attendance::as_select())
                    .load::<Attendance>(conn)?,
            ),
            Some(Writable::Enrollments) => changes(
                collection,
                enrollments::table
                    .filter(enrollments::id.eq_any(chunk))
                    .select(Enrollment::as_select())
                    .load::<Enrollment>(conn)?,
            ),
            None => Vec::new(),
        };
        found.extend(loaded.into_iter().map(|change| (change.id.clone(), change)));
    }
    Ok(found)
}
