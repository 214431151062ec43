-- A trainer's pull reads its courses' records in revision order, a page at a time. With an
-- index on the course (or session) alone, every page read all of the scope's rows to sort them
-- by revision; with the revision in the index, a page reads only index entries, and the rows of
-- the page itself.
CREATE INDEX attendance_session_rev ON attendance (session_id, rev);
CREATE INDEX sessions_course_rev ON sessions (course_id, rev);
DROP INDEX sessions_course;
CREATE INDEX enrollments_course_rev ON enrollments (course_id, rev);
CREATE INDEX course_trainers_course_rev ON course_trainers (course_id, rev);
CREATE INDEX materials_course_rev ON materials (course_id, rev);
DROP INDEX materials_course;
