{#
    The column is null in every row. On stg_crypto_quotes.invalid_reason it reports, in one
    pass, every row that breaks a value rule of macros/quote_row_problem.sql, each with the
    rule it breaks: the rules are written once, there, and the marts filter on the same column.
#}
{% test is_null(model, column_name) %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null

{% endtest %}
