DROP TABLE watermelon_pushed;
DROP TABLE watermelon_pulls;
