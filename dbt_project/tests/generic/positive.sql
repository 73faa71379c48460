{#
    The column is > 0 (or >= 0 with or_equal=true) wherever it is not null.
#}
{% test positive(model, column_name, or_equal=false) %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} {{ '<' if or_equal else '<=' }} 0

{% endtest %}
