DROP TABLE training_plan_topics;
DROP TABLE training_plan_courses;
DROP TABLE training_plans;
